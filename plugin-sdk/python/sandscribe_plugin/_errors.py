"""Exceptions a plugin raises to fail a job with a reason (the WIT ``plugin-error``)."""


class PluginError(Exception):
    """Base of the errors a plugin reports; the message is what the user sees."""


class BadConfig(PluginError):
    """The configuration is wrong; say which field and why."""


class UnsupportedAudio(PluginError):
    """The audio cannot be handled (too short, wrong language, ...)."""


class InternalError(PluginError):
    """Anything else that went wrong inside the plugin."""


class Cancelled(PluginError):
    """The plugin saw :func:`is_cancelled` and stopped early (the job ends cancelled)."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
