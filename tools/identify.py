"""Enrol a gallery and identify faces from the shell (the same as the ``lrfr-identify`` console script):

    python tools/identify.py enrol CONFIG CKPT --gallery DIR_OR_LIST --index faces.gallery [--skip-bad]
    python tools/identify.py search --index faces.gallery --query IMG_OR_DIR [--top-k 5] [--json]

The code lives in :mod:`lrfr.apis.identify` so that the installed console script and this file are one.
"""
from lrfr.apis.identify import main

if __name__ == '__main__':
    main()
