"""The prepare stage: a train/val/test split whose photos never change side."""
