#!/bin/sh
# /usr/local/bin/pdserve in the images: the CLI the chart's containers run (command: ["pdserve"]).
exec node /app/dist/src/cli/main.js "$@"
