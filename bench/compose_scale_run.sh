#!/usr/bin/env bash
# The scaled compose stack for real (issue 23; what docs/services.md#scaling-out reports):
# up with two receiver-workers, 8 transmissions, jobs per worker, SIGKILL one worker with
# jobs queued (its job finishes on the other after the lease), restart Postgres under
# traffic, down -v. Needs a Docker engine and the image GESCO_IMAGE (built from this tree);
# on this project's machines: /work/shared/tools/local-docker/setup.sh, then
#   flock /work/docker.lock bash bench/compose_scale_run.sh
set -u
cd "$(dirname "$0")/.."
export GESCO_IMAGE=${GESCO_IMAGE:-gesco-i23:latest} GESCO_SENDER_PORT=9100 GESCO_RECEIVER_PORT=9102 GESCO_RECEIVER_URL=http://localhost:9102
DC="docker-compose -p gesco-i23"
t0=$(date +%s.%N)
echo "== up --scale receiver-worker=2"; $DC up -d --scale receiver-worker=2 2>&1 | tail -12
echo "up -d returned after $(echo "$(date +%s.%N) - $t0" | bc) s"
for i in $(seq 1 150); do
  n=$($DC ps | grep -c "(healthy)")
  [ "$n" -ge 4 ] && break   # postgres, receiver, channel, sender
  sleep 2
done
echo "healthy after $(echo "$(date +%s.%N) - $t0" | bc) s"; $DC ps
send() {
  curl -s -F image=@examples/street_scene.png -F label=@examples/street_scene_labels.png -F psnr_db=10 -F seed=$1 \
    http://127.0.0.1:9100/transmit | python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('id') or d)"
}
wait_done() {
  for id in "$@"; do
    for k in $(seq 1 600); do
      st=$(curl -s http://127.0.0.1:9102/result/$id | python3 -c "import json,sys; print(json.load(sys.stdin)['status'])")
      [ "$st" = done ] || [ "$st" = failed ] && break
      sleep 0.5
    done
    curl -s http://127.0.0.1:9102/result/$id | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['id'], d['status'], 'attempts', d['attempts'], 'batch', d['timings'].get('batch_size'), 'total_s', d['timings'].get('total_s'))"
  done
}
echo "== 8 transmissions"; t1=$(date +%s.%N)
ids=$(for s in 1 2 3 4 5 6 7 8; do send $s; done)
wait_done $ids
echo "8 transmissions done in $(echo "$(date +%s.%N) - $t1" | bc) s"
curl -s -o /tmp/i23_compose_image.png -w "image.png HTTP %{http_code}, %{size_download} bytes\n" http://127.0.0.1:9102/result/$(echo $ids | cut -d' ' -f1)/image.png
echo "== jobs per worker"; $DC exec -T postgres psql -U gesco -d gesco -c "select worker, status, count(*) from jobs group by 1, 2 order by 1"
echo "== SIGKILL one worker with jobs queued"
ids2=$(for s in 11 12 13 14 15 16 17 18; do send $s; done)
sleep 1
victim=$($DC ps -q receiver-worker | head -1); echo "killing $(docker inspect -f '{{.Name}}' $victim)"; docker kill -s KILL $victim >/dev/null
$DC exec -T postgres psql -U gesco -d gesco -c "select status, worker, count(*) from jobs where attempts > 0 group by 1, 2"
t2=$(date +%s.%N); wait_done $ids2; echo "after the kill, 8 jobs finished in $(echo "$(date +%s.%N) - $t2" | bc) s"
$DC exec -T postgres psql -U gesco -d gesco -c "select worker, status, attempts, count(*) from jobs group by 1, 2, 3 order by 1, 3"
echo "== Postgres restarted under traffic"
$DC restart postgres 2>&1 | tail -1
for s in 21 22 23; do curl -s -o /dev/null -w "POST /transmit right after the restart: HTTP %{http_code}\n" -F image=@examples/street_scene.png -F label=@examples/street_scene_labels.png -F seed=$s http://127.0.0.1:9100/transmit; done
sleep 8
ids3=$(for s in 31 32; do send $s; done); wait_done $ids3
echo "== logs (workers, last lines)"; $DC logs --no-color receiver-worker 2>&1 | grep -E "expired leases|done \(batch|receiver-worker" | tail -12
echo "== down -v"; t3=$(date +%s.%N); $DC down -v 2>&1 | tail -3; echo "down in $(echo "$(date +%s.%N) - $t3" | bc) s"
