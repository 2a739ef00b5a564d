# The stack's knobs and their defaults, shared by scripts/start.sh (a development stack) and
# scripts/install-services.sh (systemd units), so that both agree on every port.
# Sourced, not run: sets the shell variables from the environment or the default.
SIP_DOMAIN=${SIP_DOMAIN:-example.com}
SIP_PORT=${SIP_PORT:-5060}
RPC_PORT=${KAMAILIO_RPC_PORT:-5071}
EVAPI_PORT=${KAMAILIO_EVAPI_PORT:-5072}
ISC_PORT=${ISC_PORT:-7080}
XDM_PORT=${XDM_PORT:-8080}
MSRP_PORT=${MSRP_PORT:-2855}
SHM=${KAMAILIO_SHM_MB:-1024}
