"""What the task modules share: sending the next step, ending a job, merging a fetched
status, counting a step's runs, writing what was paid for."""
