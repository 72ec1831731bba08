"""``google.colab.output``: the custom widget manager switch (a no-op outside Colab's front end)."""

enabled = []


def enable_custom_widget_manager():
    enabled.append(True)


def disable_custom_widget_manager():
    enabled.clear()
