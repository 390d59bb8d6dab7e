import sys

if sys.argv[1:] in (["-h"], ["--help"]):
    from ffnn_lightning.commands import overview

    print(overview())
else:
    from ffnn_lightning.cli import run

    run()
