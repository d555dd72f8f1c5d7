"""The validate stage: this run's data statistics and checks against floors and the last good run."""
