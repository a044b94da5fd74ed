"""Publishing a close: the Parquet datasets (underlag lines, pseudonymised visits, ACG input) and
the workbooks people open. Everything is derived from what the close recorded, so publishing again
never changes a figure."""
