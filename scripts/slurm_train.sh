#!/usr/bin/env bash
#SBATCH --job-name=aics
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%j.out
# Usage: sbatch --nodes N --gres gpu:G scripts/slurm_train.sh TASK train --data DIR --exp DIR [--conf F ...]
#
# Starts one torchrun per node (srun), each with one process per GPU; the first node of the allocation is
# the rendezvous host. Resubmitting the same command resumes from EXP/ckpt/last.pt, and SIGTERM before the
# time limit (sbatch --signal=TERM@120) saves a checkpoint at the next step.
set -euo pipefail
gpus=${SLURM_GPUS_ON_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$gpus" -gt 0 ] || gpus=1
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun torchrun --nnodes "$SLURM_NNODES" --nproc-per-node "$gpus" --rdzv-backend c10d \
  --rdzv-endpoint "$head_node:29500" --rdzv-id "$SLURM_JOB_ID" -m aics "$@"
