"""The history: each SoC's verdict across versions, or across the commits
of a git repository.

    revisions.py  judging the revisions of one chunk (on a Dask worker)
    cluster.py    the chunks on a Dask cluster, gathered
    stitching.py  the History (auditor/documents.py) of commits or of sweeps
    text.py       the History for people
    mail.py       the robot's mails
    plot.py       the plot
"""
