"""Task-agnostic infrastructure shared by every aics task (no task's nn.Module lives here)."""
