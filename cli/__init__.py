"""The ``clipstream`` command: thin sub-commands that call the services, training, evaluation and devkit."""
