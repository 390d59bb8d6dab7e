"""``python -m ffnn_lightning`` and ``ffnn-lightning``: the command line, which imports PyTorch
and Lightning only for the commands that need them."""

import sys

from ffnn_lightning.commands import ONNX_PREDICT, command_module, overview


def main() -> None:
    """Dispatch ``sys.argv`` to the light overview, the ONNX predictor or the LightningCLI."""
    args = sys.argv[1:]
    if args in (["-h"], ["--help"]):
        print(overview())
    elif command_module(args) == ONNX_PREDICT:  # onnxruntime alone
        from ffnn_lightning.commands.predict_onnx import run

        run(args[1:])
    else:
        from ffnn_lightning.cli import run

        run()


if __name__ == "__main__":
    main()
