# bash completion for qnetctl (installed as share/bash-completion/completions/qnetctl).
# Commands and flags come from qnetctl's own --help, so they never go stale;
# --network completes the names `qnetctl ls` lists. zsh: autoload bashcompinit;
# bashcompinit; then source this file.
_qnetctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd="" i=1 word
  local prog=${COMP_WORDS[0]}
  # Every qnetctl option but --quiet (-q) and --help takes a value: the word
  # after one is never the command. bash splits --flag=value into --flag, =, value.
  while [ "$i" -lt "$COMP_CWORD" ]; do
    word=${COMP_WORDS[i]}
    case $word in
      --quiet|-q|--help|-h) ;;
      -*) i=$((i + 1)); [ "${COMP_WORDS[i]:-}" = "=" ] && i=$((i + 1)) ;;
      *) cmd=$word; break ;;
    esac
    i=$((i + 1))
  done
  if [ "$prev" = "=" ] && [ "$COMP_CWORD" -ge 2 ]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi
  case $prev in
    --network)
      COMPREPLY=($(compgen -W "$("$prog" ls 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur"))
      return ;;
    --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
    --state-dir|--out|--plot|--qnetd|--dir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --quiet|-q|--help|-h) ;;  # no value: complete what follows as usual
    -*) COMPREPLY=(); return ;;  # a value qnetctl cannot guess (a node, a count, ...)
  esac
  if [[ $cur == -* ]]; then
    local help
    if [ -n "$cmd" ]; then help=$("$prog" "$cmd" --help 2>/dev/null); else help=$("$prog" --help 2>/dev/null); fi
    # The flags of the usage block and of the option lines ("  --flag ..."),
    # not every --word the prose mentions (entangle's names qnetsim's --from).
    local flags
    flags=$({ printf '%s\n' "$help" | sed -n '1,/^$/p'; printf '%s\n' "$help" | grep -E '^ +--'; } |
            grep -o -- '--[a-z][a-z-]*')
    COMPREPLY=($(compgen -W "$(printf '%s\n' $flags --network --state-dir --address --node --output --quiet --help | sort -u)" -- "$cur"))
    return
  fi
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$("$prog" --help 2>/dev/null | sed -n '/^Commands:/,/^Global options/p' | awk '/^  [a-z]/ { print $1 }') help" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -f -- "$cur"))  # network files (up, pki init)
}
complete -F _qnetctl qnetctl
