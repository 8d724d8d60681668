# Call 6 (carry nothing): issue 14's Table 2 on today's defaults — session 8's script, unchanged
# (set T2_LIMIT to the device time left minus 30 s).
exec bash gpu/session8/call6.sh
