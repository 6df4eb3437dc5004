# SPDX-License-Identifier: MIT
# bash completion for certbind: commands, each command's options (the same
# as `certbind COMMAND --help` lists: tests/cli/test_completion.sh checks
# it), files after -c/--config/--out/--plan, directories after
# --state-dir, the values of --log-format and --log-level.
# Needs bash only (not the bash-completion package).

_certbind_commands="validate plan apply run status adopt import verify help"
_certbind_common="--log-format --log-level -h --help"

# the options of one command, besides the common ones
_certbind_options_of()
{
  case $1 in
    validate | run) echo "-c --config" ;;
    plan) echo "-c --config --json --out" ;;
    verify) echo "-c --config --json" ;;
    apply) echo "-c --config --plan --dry-run --force --yes" ;;
    status) echo "--json --state-dir --all" ;;
    adopt | import) echo "-c --config --certificate" ;;
  esac
}

# the options whose value is the next word
_certbind_takes_value()
{
  case $1 in
    -c | --config | --out | --plan | --state-dir | --certificate | \
      --log-format | --log-level) return 0 ;;
  esac
  return 1
}

_certbind_reply()
{
  COMPREPLY=()
  mapfile -t COMPREPLY < <(compgen "$@")
}

_certbind()
{
  local cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= i

  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # "--config=FILE": bash splits the word at "=" (COMP_WORDBREAKS)
  if [[ $cur == = ]]; then
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    cur=
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi

  case $prev in
    -c | --config | --out | --plan)
      compopt -o filenames 2>/dev/null
      _certbind_reply -f -- "$cur"
      return 0
      ;;
    --state-dir)
      compopt -o filenames 2>/dev/null
      _certbind_reply -d -- "$cur"
      return 0
      ;;
    --log-format)
      _certbind_reply -W "text json" -- "$cur"
      return 0
      ;;
    --log-level)
      _certbind_reply -W "debug info warn error" -- "$cur"
      return 0
      ;;
    --certificate)
      COMPREPLY=() # a name of the file or an ID: nothing to offer
      return 0
      ;;
  esac

  # the command: the first word that is neither an option nor its value
  for ((i = 1; i < COMP_CWORD; i++)); do
    local w=${COMP_WORDS[i]}
    if _certbind_takes_value "$w"; then
      ((i++))
    elif [[ $w == = ]]; then
      continue
    elif [[ $w != -* ]]; then
      cmd=$w
      break
    fi
  done

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      _certbind_reply -W "$_certbind_common --version -c --config" -- "$cur"
    else
      _certbind_reply -W "$_certbind_commands" -- "$cur"
    fi
    return 0
  fi
  if [[ $cmd == help && $cur != -* ]]; then
    # one topic: the word after "help" only
    if ((i + 1 == COMP_CWORD)); then
      _certbind_reply -W "$_certbind_commands" -- "$cur"
    else
      COMPREPLY=()
    fi
    return 0
  fi
  _certbind_reply -W "$(_certbind_options_of "$cmd") $_certbind_common" -- "$cur"
  return 0
}

complete -F _certbind certbind
