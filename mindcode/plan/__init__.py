"""``mindcode plan``: the memory a job needs per device, from its config and layout, before anything is launched."""
