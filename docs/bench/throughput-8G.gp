# throughput-8G.gp - drawn by refdio bench; run: gnuplot throughput-8G.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/throughput-8G.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 8G from the caller: throughput against the window (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'window (refctx chunks in flight)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [0.769231:41.6]
$s0 << EOD
0.769231 940.551 822.089 1173.27
41.6 940.551 822.089 1173.27
EOD
# s0: host O_DIRECT
$s1 << EOD
1 494.982 433.562 512.438
2 658.015 599.861 890.959
4 835.818 692.825 1216.57
8 972.091 670.552 1121.89
16 1028.59 624.985 1043.38
32 1211.12 750.358 1550
EOD
# s1: refctx 1M inline
$s2 << EOD
0.769231 147.838 61.1437 169.384
41.6 147.838 61.1437 169.384
EOD
# s2: pin 1M inline
$s3 << EOD
0.769231 462.199 308.785 474.27
41.6 462.199 308.785 474.27
EOD
# s3: chunk 1M inline
$s4 << EOD
0.769231 367.947 209.237 372.05
41.6 367.947 209.237 372.05
EOD
# s4: bounce64 256K inline
plot \
  $s0 using 1:2 with lines lw 2 dt 2 title 'host O_DIRECT (dd bs=64M)', \
  $s1 using 1:2:3:4 with yerrorlines lw 2 title 'refctx 1M', \
  $s2 using 1:2 with lines lw 2 dt 4 title 'pin 1M', \
  $s3 using 1:2 with lines lw 2 dt 4 title 'chunk 1M', \
  $s4 using 1:2 with lines lw 2 dt 4 title 'bounce64 256K'
