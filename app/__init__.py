"""The desktop app: Qt views and the one engine worker. Only shows and asks; the work is in engine/."""
