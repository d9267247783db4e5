"""Operations: replica monitor, failover policy, playbooks and broker control."""
