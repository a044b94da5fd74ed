"""The month itself: files in (intake), the close, dispens, approval and what units and analysts
look at before the close (previews and diffs). Front doors call these functions; the rules of the
month live here once."""
