"""Weight files shipped with mdfloss; load them with ``MDFLoss.pretrained(name)``."""
