"""Bot deployments: Compute Engine VMs driven by deploy jobs (Cloud Tasks -> deployWorker),
the VM's progress over Pub/Sub (provisioningEvents), plugin/skill configs and API keys."""
