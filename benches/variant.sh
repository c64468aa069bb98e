# Sourced by benches/family-ab.sh and benches/compare/run.sh: the funnel pipeline of one family
# member, derived from a bench pipeline (pipelines/bench/*.yaml).
#
#   variant OUT.yaml BENCH.yaml MODEL [DATA]
#
# MODEL: esmm (the bench pipeline itself), aitm or escm2_dr (the preset), dcn (ESMM with two
# DCN-v2 cross layers before each tower's MLP), or ESMM over a 128-wide
# bottom with 64-wide towers: shared_bottom, mmoe (4 experts), ple (1 expert per stage and 1
# shared, 2 levels). DATA replaces the training file (an absolute path); otherwise the bench
# pipeline's own, made absolute.
variant() {
  local out=$1 bench=$2 model=$3 data=${4:-} model_lines="" towers="" cross=""
  case "$model" in
    esmm) ;;
    aitm) model_lines='  preset: aitm' ;;
    escm2_dr) model_lines='  preset: escm2_dr' ;;
    dcn) cross='2' ;;
    shared_bottom) model_lines='  bottom: { kind: shared_bottom, hidden: [128] }' towers='[64]' ;;
    mmoe) model_lines='  bottom: { kind: mmoe, experts: 4, hidden: [128] }' towers='[64]' ;;
    ple) model_lines='  bottom: { kind: ple, experts: 1, shared_experts: 1, levels: 2, hidden: [128] }' towers='[64]' ;;
    *) echo "variant: MODEL is esmm, aitm, escm2_dr, dcn, shared_bottom, mmoe or ple, not '$model'" >&2; return 2 ;;
  esac
  local path="s|path: ../../data/|path: $PWD/data/|"
  [ -n "$data" ] && path="s|path: ../../data/[^ ]*|path: $data|"
  sed -e "$path" \
    ${model_lines:+-e "s/^train:\$/model:\n$model_lines\ntrain:/"} \
    ${towers:+-e "s/hidden: \\[128, 64\\]/hidden: $towers/"} \
    ${cross:+-e "s/hidden: \\[128, 64\\] }/hidden: [128, 64], cross_layers: $cross }/"} "$bench" > "$out"
}
