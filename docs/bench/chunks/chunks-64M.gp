# chunks-64M.gp - drawn by refdio bench; run: gnuplot chunks-64M.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/chunks/chunks-64M.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 64M from the caller: throughput against the chunk size (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'chunk size (KiB)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [196.923:21299.2]
$s0 << EOD
196.923 1601.49 938.168 1692.67
21299.2 1601.49 938.168 1692.67
EOD
$s1 << EOD
256 735.199 667.12 1316.27
1024 1225.24 355.32 1806
4096 485.89 472.647 716.868
16384 137.892 66.805 292.151
EOD
$s2 << EOD
256 743.012 442.897 1714.9
1024 1856.32 1083.4 1979.94
4096 661.364 190.137 987.518
16384 125.146 85.9137 287.629
EOD
$s3 << EOD
256 185.512 82.8063 260.345
1024 235.408 130.795 317.456
4096 248.595 153.632 276.806
16384 184.631 99.788 220.589
EOD
$s4 << EOD
256 183.797 117.724 267.606
1024 272.004 193.262 275.818
4096 242.13 93.7289 328.617
16384 164.621 81.4992 222.321
EOD
$s5 << EOD
256 512.696 226.127 555.937
1024 673.857 249.562 700.151
4096 1376.87 729.278 1478.7
16384 418.562 118.255 595.396
EOD
$s6 << EOD
256 464.621 156.334 623.443
1024 644.389 178.115 1350.54
4096 632.363 632.355 1515.98
16384 423.526 156.991 617.3
EOD
plot \
  $s0 using 1:2 with lines lw 2 dt 2 title 'host O_DIRECT (dd bs=64M)', \
  $s1 using 1:2:3:4 with yerrorlines lw 2 title 'refctx W=8 inline', \
  $s2 using 1:2:3:4 with yerrorlines lw 2 title 'refctx W=8 punt', \
  $s3 using 1:2:3:4 with yerrorlines lw 2 title 'pin inline', \
  $s4 using 1:2:3:4 with yerrorlines lw 2 title 'pin punt', \
  $s5 using 1:2:3:4 with yerrorlines lw 2 title 'chunk inline', \
  $s6 using 1:2:3:4 with yerrorlines lw 2 title 'chunk punt'
