"""Deprecating parts of the plugin API without breaking plugins.

The plugin API is versioned ``MAJOR.MINOR`` (:data:`nas_core.PLUGIN_API_VERSION`). A plugin
declares the version it was written for (``NAS_PLUGIN_API = "1"`` or ``"1.2"``); it loads when
the major is the same and the engine's minor is at least the one declared. Within a major,
hooks and hook arguments are only added. To retire a hook argument:

1. keep it in the hookspec and keep passing it, add its replacement, bump the minor;
2. mark it on the spec, so every plugin implementation that asks for it warns at load time,
   pointing at the plugin's own file and line::

       @hookspec(warn_on_impl_args=deprecated_arguments("nas_train_start", run="use `ctx.run`", since="1.1"))
       def nas_train_start(run, ctx): ...

3. remove it in the next major (plugins that still declare the old major are then rejected
   with a one-line error naming both versions).
"""

from __future__ import annotations


class NasPluginDeprecationWarning(DeprecationWarning):
    """A plugin uses a part of the plugin API that the next major version removes."""


def deprecated_arguments(hook: str, since: str, **arguments: str) -> dict[str, Warning]:
    """``warn_on_impl_args`` for a hookspec: ``{argument: warning}``, one per deprecated argument.

    Each keyword names a deprecated argument of ``hook``; its value says what to use instead.
    """
    major = since.split(".")[0]
    removal = f"{int(major) + 1}" if major.isdigit() else "the next major"
    return {
        name: NasPluginDeprecationWarning(
            f"{hook}: argument '{name}' is deprecated since plugin API {since} and goes away in plugin API {removal}; {advice}"
        )
        for name, advice in arguments.items()
    }
