"""The publish stage: registry, the quality gate, the ImageNet model, registry status."""
