"""Errors a user can cause and fix: the command line prints them in one line and exits 2."""


class MinidetError(Exception):
    """Base class of the errors caused by bad input (a file, an argument, a checkpoint)."""


class DatasetError(MinidetError, ValueError):
    """A dataset directory, annotation or image that cannot be used. The message names the file."""


class CheckpointError(MinidetError, ValueError):
    """A checkpoint that is damaged, of another architecture, or does not fit the run."""


class TrainingDiverged(MinidetError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
