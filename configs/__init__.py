"""STJ's shared configuration: the schema (``configs.schema``) and its loader (``configs.loader``).

The YAML files beside this module are the shipped configurations: ``stj.yaml`` (live Amazon) and
``demo.yaml`` (the offline local catalog).
"""

from configs.errors import UserError
from configs.loader import ConfigError, load_config
from configs.schema import Config

__all__ = ["Config", "ConfigError", "UserError", "load_config"]
