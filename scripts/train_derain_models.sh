#!/usr/bin/env bash
# Train the shipped derain models (cleannet, mspfn, rainmer; realtime) on the rain mix, in parallel on one
# device, each within a wall-time budget. Usage:
#   bash scripts/train_derain_models.sh SHARED_DATA OUT_DIR [DEVICE=cuda] [BUDGET_S=330] [BATCH=16] [WORKERS=4]
# Then export and evaluate here: nitedr_ros/training/publish.py (nitedr train --export-to does both).
set -euo pipefail
data=$1 out=$2 device=${3:-cuda} budget=${4:-330} batch=${5:-16} workers=${6:-4}
amp=(); [[ $device == cuda* ]] && amp=(--amp)
mkdir -p "$out"
pids=()
for network in cleannet mspfn rainmer; do
  OMP_NUM_THREADS=1 "${PYTHON:-python3}" -m nitedr_ros train --network "$network" --threads 2 --config realtime --mix "$data" --device "$device" "${amp[@]}" \
    --steps "${STEPS:-60000}" --time-budget "$budget" --batch "$batch" --patch 128 --workers "$workers" \
    --val-every 1000 --checkpoint-every 1000 --log-every 50 --no-progress --force \
    --out "$out/$network" > "$out/$network.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for network in cleannet mspfn rainmer; do tail -n 3 "$out/$network.log"; done
exit $status
