#!/usr/bin/env bash
# Trains tlgen on a Cloud TPU VM slice: creates it as a queued resource, waits until it is
# ACTIVE, installs tlgen on every worker, runs `tlgen train` on every worker (one JAX
# process per host; they find each other through jax.distributed), streams the logs and
# deletes the slice on exit. A preempted spot slice is recreated and training resumes from
# the newest checkpoint (--max-restarts).
#
#   launch/tpu_pod.sh --name tlgen-v4 --project my-proj --zone us-central2-b \
#       --accelerator-type v4-32 --runtime-version tpu-ubuntu2204-base \
#       --repo https://github.com/me/tlgen.git --mount-bucket my-bucket \
#       --workdir /mnt/my-bucket/runs/tae -- \
#       --config configs/timescale_ae_synthetic.py:base --config.data.dir=/mnt/my-bucket/data/city
#
# Everything after `--` goes to `tlgen train`. The work directory (and the dataset) must be
# on storage every worker sees: --mount-bucket mounts gs://BUCKET at /mnt/BUCKET with gcsfuse.
# --dry-run prints every gcloud command instead of running it.
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

NAME="" PROJECT="" ZONE="" TYPE="" RUNTIME="" REPO="" REF="main" WORKDIR="" BUCKET=""
SPOT=0 KEEP=0 DRY_RUN=0 MAX_RESTARTS=0 POLL_SECONDS=30
need() {  # need "$@": the flag $1 has a value $2
  if [[ $# -lt 2 || "$2" == --* ]]; then
    echo "tpu_pod.sh: $1 needs a value (see --help)" >&2
    exit 2
  fi
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need "$@"; NAME="$2"; shift 2 ;;
    --project) need "$@"; PROJECT="$2"; shift 2 ;;
    --zone) need "$@"; ZONE="$2"; shift 2 ;;
    --accelerator-type) need "$@"; TYPE="$2"; shift 2 ;;
    --runtime-version) need "$@"; RUNTIME="$2"; shift 2 ;;
    --repo) need "$@"; REPO="$2"; shift 2 ;;
    --ref) need "$@"; REF="$2"; shift 2 ;;
    --workdir) need "$@"; WORKDIR="$2"; shift 2 ;;
    --mount-bucket) need "$@"; BUCKET="$2"; shift 2 ;;
    --max-restarts) need "$@"; MAX_RESTARTS="$2"; shift 2 ;;
    --spot) SPOT=1; shift ;;
    --keep) KEEP=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "tpu_pod.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
TRAIN_ARGS=("$@")
if ! [[ "$MAX_RESTARTS" =~ ^[0-9]+$ ]]; then
  echo "tpu_pod.sh: --max-restarts $MAX_RESTARTS must be a whole number (0 or more)" >&2
  exit 2
fi
for pair in NAME:--name PROJECT:--project ZONE:--zone TYPE:--accelerator-type \
            RUNTIME:--runtime-version REPO:--repo WORKDIR:--workdir; do
  var="${pair%%:*}"
  if [[ -z "${!var}" ]]; then
    echo "tpu_pod.sh: ${pair#*:} is required (see --help)" >&2
    exit 2
  fi
done

LOCATION=(--project "$PROJECT" --zone "$ZONE")

show() {  # prints a command, single-quoting the arguments that need it
  local out=() a q="'"
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then out+=("$a"); else out+=("$q${a//$q/$q\\$q$q}$q"); fi
  done
  echo "${out[*]}"
}

run() {  # runs a command, or prints it with --dry-run
  if [[ "$DRY_RUN" == 1 ]]; then
    show "$@"
  else
    "$@"
  fi
}

on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker=all --command="$1"
}

create() {
  local spot=()
  [[ "$SPOT" == 1 ]] && spot=(--spot)
  run gcloud compute tpus queued-resources create "$NAME" --node-id "$NAME" "${LOCATION[@]}" \
    --accelerator-type "$TYPE" --runtime-version "$RUNTIME" "${spot[@]}"
}

state() {
  gcloud compute tpus queued-resources describe "$NAME" "${LOCATION[@]}" --format='value(state.state)'
}

wait_active() {
  if [[ "$DRY_RUN" == 1 ]]; then
    run gcloud compute tpus queued-resources describe "$NAME" "${LOCATION[@]}" --format='value(state.state)'
    return
  fi
  while true; do
    local s; s=$(state)
    echo "tpu_pod.sh: $NAME is ${s:-UNKNOWN}" >&2
    case "$s" in
      ACTIVE) return ;;
      FAILED|SUSPENDED) echo "tpu_pod.sh: $NAME is $s; giving up" >&2; return 1 ;;
    esac
    sleep "$POLL_SECONDS"
  done
}

delete() {
  run gcloud compute tpus queued-resources delete "$NAME" "${LOCATION[@]}" --force --quiet || true
}

cleanup() {
  if [[ "$KEEP" == 1 ]]; then
    echo "tpu_pod.sh: --keep: $NAME is left running; delete it with:" >&2
    echo "  gcloud compute tpus queued-resources delete $NAME --project $PROJECT --zone $ZONE --force --quiet" >&2
  else
    delete
  fi
}
trap cleanup EXIT

install() {
  local mount=""
  if [[ -n "$BUCKET" ]]; then
    mount="if ! command -v gcsfuse >/dev/null; then \
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null && \
echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-\$(lsb_release -cs) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null && \
sudo apt-get update -q && sudo apt-get install -y -q gcsfuse; fi && \
sudo mkdir -p /mnt/$BUCKET && sudo chown \$USER /mnt/$BUCKET && \
(mountpoint -q /mnt/$BUCKET || gcsfuse --implicit-dirs $BUCKET /mnt/$BUCKET) && "
  fi
  # tlgen needs Python >= 3.11; the TPU VM images have Ubuntu's (3.10 on 22.04): uv brings one.
  on_all_workers "set -e; ${mount}curl -LsSf https://astral.sh/uv/install.sh | sh -s -- -q && \
~/.local/bin/uv venv -q --allow-existing --python 3.11 ~/tlgen-env && \
~/.local/bin/uv pip install -q --python ~/tlgen-env/bin/python -U 'jax[tpu]' 'git+$REPO@$REF' && \
rm -rf ~/tlgen && git clone -q --depth 1 --branch $REF $REPO ~/tlgen"
}

train() {
  local args=""
  if [[ ${#TRAIN_ARGS[@]} -gt 0 ]]; then args=$(printf '%q ' "${TRAIN_ARGS[@]}"); fi
  on_all_workers "cd ~/tlgen && TLGEN_DISTRIBUTED=auto ~/tlgen-env/bin/python -m tlgen train --workdir $(printf '%q' "$WORKDIR") $args"
}

attempt=0
while true; do
  create
  wait_active
  install
  code=0
  train || code=$?
  if [[ "$code" == 0 ]]; then
    [[ "$DRY_RUN" == 1 ]] || echo "tpu_pod.sh: training finished" >&2
    exit 0
  fi
  # 75: tlgen saved a checkpoint and stopped (a preemption notice); a slice that is no longer
  # ACTIVE was taken away. Either way the next slice resumes from the newest checkpoint.
  status=$(state || echo UNKNOWN)
  if [[ "$attempt" -ge "$MAX_RESTARTS" || ("$status" == ACTIVE && "$code" != 75) ]]; then
    echo "tpu_pod.sh: training stopped (exit $code; slice $NAME is $status)" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  echo "tpu_pod.sh: training stopped (exit $code; slice $NAME is $status); recreating the slice," \
    "restart $attempt of $MAX_RESTARTS" >&2
  delete
done
