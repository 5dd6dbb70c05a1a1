# throughput-1G.gp - drawn by refdio bench; run: gnuplot throughput-1G.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/throughput-1G.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 1G from the caller: throughput against the window (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'window (refctx chunks in flight)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [0.769231:41.6]
$s0 << EOD
0.769231 827.547 782.598 939.772
41.6 827.547 782.598 939.772
EOD
# s0: host O_DIRECT
$s1 << EOD
1 382.596 365.672 393.591
2 490.683 339.198 532.481
4 729.036 590.048 733.324
8 730.111 719.327 845.347
16 759.793 709.856 1241.22
32 771.336 717.734 1525.89
EOD
# s1: refctx 1M inline
$s2 << EOD
0.769231 127.765 121.368 182.715
41.6 127.765 121.368 182.715
EOD
# s2: pin 1M inline
$s3 << EOD
0.769231 421.154 389.881 461.154
41.6 421.154 389.881 461.154
EOD
# s3: chunk 1M inline
$s4 << EOD
0.769231 324.175 285.165 434.596
41.6 324.175 285.165 434.596
EOD
# s4: bounce64 256K inline
plot \
  $s0 using 1:2 with lines lw 2 dt 2 title 'host O_DIRECT (dd bs=64M)', \
  $s1 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 1M', \
  $s2 using 1:2 with lines lw 2 dt 4 title 'pin 1M', \
  $s3 using 1:2 with lines lw 2 dt 4 title 'chunk 1M', \
  $s4 using 1:2 with lines lw 2 dt 4 title 'bounce64 256K'
