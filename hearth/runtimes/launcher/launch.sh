#!/bin/bash
# Hearth's in-sandbox launcher (runs as the sandbox's command).
#
#   launch.sh --provided      start the custom runtime: /var/task/bootstrap, else /opt/bootstrap
#   launch.sh -- ARGV...      start a managed runtime (ARGV) after the extensions
#                             (ARGV[0] may be the function's AWS_LAMBDA_EXEC_WRAPPER)
#
# First every executable file in /opt/extensions is started in the background (external
# extensions, as on Lambda), each in a subshell that reports its exit to the worker; then the runtime replaces this shell (exec), so the
# runtime's exit ends the sandbox. No valid bootstrap: Runtime.InvalidEntrypoint is
# posted to the Runtime API's init/error, with Lambda's message, and the shell exits 1.

exited() {
    # Tell the worker an extension process ended ($1 name, $2 status): the platform's
    # view of extension exits (Lambda's own supervisor sees them; ours cannot, past exec).
    local LC_ALL=C
    local host=${AWS_LAMBDA_RUNTIME_API%:*} port=${AWS_LAMBDA_RUNTIME_API##*:}
    if exec 4<>"/dev/tcp/$host/$port"; then
        printf 'POST /2020-01-01/extension/hearth/exited HTTP/1.1\r\nHost: %s\r\nLambda-Extension-Name: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
            "$AWS_LAMBDA_RUNTIME_API" "$1" "${#2}" "$2" >&4
        read -r -t 5 _status <&4
        exec 4<&-
    fi
}

if [ -d /opt/extensions ]; then
    for ext in /opt/extensions/*; do
        if [ -f "$ext" ] && [ -x "$ext" ]; then
            ( "$ext"; exited "${ext##*/}" "$?" ) &
        fi
    done
fi

init_error() {
    # $1: the message (plain text; the worker prefixes "RequestId: <id> Error: ").
    local LC_ALL=C
    local host=${AWS_LAMBDA_RUNTIME_API%:*} port=${AWS_LAMBDA_RUNTIME_API##*:}
    local body=$1
    if exec 3<>"/dev/tcp/$host/$port"; then
        printf 'POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: %s\r\nLambda-Runtime-Function-Error-Type: Runtime.InvalidEntrypoint\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
            "$AWS_LAMBDA_RUNTIME_API" "${#body}" "$body" >&3
        read -r -t 5 _status <&3
        exec 3<&-
    fi
    echo "$body" >&2
    exit 1
}

if [ "$1" = "--provided" ]; then
    for boot in "${LAMBDA_TASK_ROOT:-/var/task}/bootstrap" /opt/bootstrap; do
        if [ -e "$boot" ]; then
            if [ -f "$boot" ] && [ -x "$boot" ]; then
                exec "$boot"
            fi
            init_error "fork/exec $boot: permission denied"
        fi
    done
    init_error "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
fi

if [ "$1" = "--" ]; then
    shift
fi
# A command that cannot start (a function's AWS_LAMBDA_EXEC_WRAPPER that is missing or
# not executable): Runtime.InvalidEntrypoint with the fork/exec message, as on Lambda.
if [ ! -e "$1" ]; then
    init_error "fork/exec $1: no such file or directory"
elif [ ! -f "$1" ] || [ ! -x "$1" ]; then
    init_error "fork/exec $1: permission denied"
fi
exec "$@"
