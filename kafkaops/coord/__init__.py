"""ZooKeeper coordination: one session, fenced checkpoints, leadership."""
