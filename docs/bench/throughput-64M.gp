# throughput-64M.gp - drawn by refdio bench; run: gnuplot throughput-64M.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/throughput-64M.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 64M from the caller: throughput against the window (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'window (refctx chunks in flight)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [0.769231:41.6]
$s0 << EOD
0.769231 977.636 917.94 1528.1
41.6 977.636 917.94 1528.1
EOD
# s0: host O_DIRECT
$s1 << EOD
1 302.524 215.173 419.123
2 662.472 419.779 728.527
4 602.266 531.66 1872.29
8 717.69 382.691 1180.68
16 580.331 548.318 1537.11
32 665.244 335.144 1512.71
EOD
# s1: refctx 1M inline
$s2 << EOD
0.769231 255.954 143.126 355.463
41.6 255.954 143.126 355.463
EOD
# s2: pin 1M inline
$s3 << EOD
0.769231 550.307 424.897 608.083
41.6 550.307 424.897 608.083
EOD
# s3: chunk 1M inline
$s4 << EOD
0.769231 381.669 337.097 403.978
41.6 381.669 337.097 403.978
EOD
# s4: bounce64 256K inline
plot \
  $s0 using 1:2 with lines lw 2 dt 2 title 'host O_DIRECT (dd bs=64M)', \
  $s1 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 1M', \
  $s2 using 1:2 with lines lw 2 dt 4 title 'pin 1M', \
  $s3 using 1:2 with lines lw 2 dt 4 title 'chunk 1M', \
  $s4 using 1:2 with lines lw 2 dt 4 title 'bounce64 256K'
