"""Network architectures shared unchanged by every objective (see `models.factory`)."""
from models.factory import ARCHITECTURES, ArchConfig, NetFactory, register_architecture

__all__ = ["ARCHITECTURES", "ArchConfig", "NetFactory", "register_architecture"]
