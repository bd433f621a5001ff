"""`python -m ganmusic` and the `ganmusic` command (`main`).

The command imports the CLI only when it runs: Python's spawn start method runs the command's
script again in every writer process `ganmusic sample` starts, and there an import of the CLI
at the top (typer, JAX, orbax) cost each writer a second or more of CPU beside the sampling.
"""


def main() -> None:
    from ganmusic.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
