"""The Airflow front door: the task functions the DAGs call (``tasks``) and the timetable plugin
(``plugin``). Named after what it adapts; inside it, ``import airflow`` still means the real
Airflow (absolute imports)."""
