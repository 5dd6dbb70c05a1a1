# throughput-64M.gp - drawn by refdio bench; run: gnuplot throughput-64M.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/chunks/throughput-64M.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 64M from the caller: throughput against the window (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'window (refctx chunks in flight)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [6.15385:20.8]
$s0 << EOD
6.15385 780.276 729.465 1425.08
20.8 780.276 729.465 1425.08
EOD
# s0: host O_DIRECT
$s1 << EOD
8 457.349 436.18 565.264
EOD
# s1: refctx 256K inline
$s2 << EOD
8 728.435 606.39 1720.95
EOD
# s2: refctx 256K punt
$s3 << EOD
8 1027.77 458.893 1238.4
EOD
# s3: refctx 1M inline
$s4 << EOD
8 1213.27 890.267 1643.02
EOD
# s4: refctx 1M punt
$s5 << EOD
8 245.772 141.639 397.855
EOD
# s5: refctx 4M inline
$s6 << EOD
8 422.278 305.834 459.503
EOD
# s6: refctx 4M punt
$s7 << EOD
8 116.124 94.2159 119.58
EOD
# s7: refctx 16M inline
$s8 << EOD
8 90.7843 71.5562 110.204
EOD
# s8: refctx 16M punt
$s9 << EOD
6.15385 90.0094 61.3997 134.926
20.8 90.0094 61.3997 134.926
EOD
# s9: pin 256K inline
$s10 << EOD
6.15385 174.865 83.7464 215.058
20.8 174.865 83.7464 215.058
EOD
# s10: pin 256K punt
$s11 << EOD
6.15385 112.069 97.6487 205.29
20.8 112.069 97.6487 205.29
EOD
# s11: pin 1M inline
$s12 << EOD
6.15385 102.131 88.138 188.886
20.8 102.131 88.138 188.886
EOD
# s12: pin 1M punt
$s13 << EOD
6.15385 148.501 126.59 216.006
20.8 148.501 126.59 216.006
EOD
# s13: pin 4M inline
$s14 << EOD
6.15385 146.39 135.906 224.685
20.8 146.39 135.906 224.685
EOD
# s14: pin 4M punt
$s15 << EOD
6.15385 109.777 71.6755 121.177
20.8 109.777 71.6755 121.177
EOD
# s15: pin 16M inline
$s16 << EOD
6.15385 87.1935 82.0124 131.894
20.8 87.1935 82.0124 131.894
EOD
# s16: pin 16M punt
$s17 << EOD
6.15385 188.316 138.396 290.602
20.8 188.316 138.396 290.602
EOD
# s17: chunk 256K inline
$s18 << EOD
6.15385 262.706 195.144 353.358
20.8 262.706 195.144 353.358
EOD
# s18: chunk 256K punt
$s19 << EOD
6.15385 402.73 351.022 464.453
20.8 402.73 351.022 464.453
EOD
# s19: chunk 1M inline
$s20 << EOD
6.15385 358.911 328.964 387.951
20.8 358.911 328.964 387.951
EOD
# s20: chunk 1M punt
$s21 << EOD
6.15385 508.588 475.329 538.629
20.8 508.588 475.329 538.629
EOD
# s21: chunk 4M inline
$s22 << EOD
6.15385 484.181 327.654 484.798
20.8 484.181 327.654 484.798
EOD
# s22: chunk 4M punt
$s23 << EOD
6.15385 233.215 203.877 252.607
20.8 233.215 203.877 252.607
EOD
# s23: chunk 16M inline
$s24 << EOD
6.15385 214.915 188.66 349.505
20.8 214.915 188.66 349.505
EOD
# s24: chunk 16M punt
plot \
  $s0 using 1:2 with lines lw 2 dt 2 title 'host O_DIRECT (dd bs=64M)', \
  $s1 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 256K inline', \
  $s2 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 256K punt', \
  $s3 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 1M inline', \
  $s4 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 1M punt', \
  $s5 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 4M inline', \
  $s6 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 4M punt', \
  $s7 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 16M inline', \
  $s8 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 16M punt', \
  $s9 using 1:2 with lines lw 2 dt 4 title 'pin 256K inline', \
  $s10 using 1:2 with lines lw 2 dt 4 title 'pin 256K punt', \
  $s11 using 1:2 with lines lw 2 dt 4 title 'pin 1M inline', \
  $s12 using 1:2 with lines lw 2 dt 4 title 'pin 1M punt', \
  $s13 using 1:2 with lines lw 2 dt 4 title 'pin 4M inline', \
  $s14 using 1:2 with lines lw 2 dt 4 title 'pin 4M punt', \
  $s15 using 1:2 with lines lw 2 dt 4 title 'pin 16M inline', \
  $s16 using 1:2 with lines lw 2 dt 4 title 'pin 16M punt', \
  $s17 using 1:2 with lines lw 2 dt 4 title 'chunk 256K inline', \
  $s18 using 1:2 with lines lw 2 dt 4 title 'chunk 256K punt', \
  $s19 using 1:2 with lines lw 2 dt 4 title 'chunk 1M inline', \
  $s20 using 1:2 with lines lw 2 dt 4 title 'chunk 1M punt', \
  $s21 using 1:2 with lines lw 2 dt 4 title 'chunk 4M inline', \
  $s22 using 1:2 with lines lw 2 dt 4 title 'chunk 4M punt', \
  $s23 using 1:2 with lines lw 2 dt 4 title 'chunk 16M inline', \
  $s24 using 1:2 with lines lw 2 dt 4 title 'chunk 16M punt'
