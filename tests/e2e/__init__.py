"""The end-to-end layer: the tool over HTTPS against the sandbox (moto + the fidelity layer), or a whole command."""
