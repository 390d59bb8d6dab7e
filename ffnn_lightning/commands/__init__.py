"""The commands beside LightningCLI's: ``tune``, ``cv``, ``compare`` and ``export``, each a
module with ``main(argv)`` that ``python -m ffnn_lightning <command>`` dispatches to."""
