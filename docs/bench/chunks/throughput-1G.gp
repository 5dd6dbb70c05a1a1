# throughput-1G.gp - drawn by refdio bench; run: gnuplot throughput-1G.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/chunks/throughput-1G.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 1G from the caller: throughput against the window (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'window (refctx chunks in flight)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [6.15385:20.8]
$s0 << EOD
6.15385 673.533 667.852 708.797
20.8 673.533 667.852 708.797
EOD
# s0: host O_DIRECT
$s1 << EOD
8 462.209 364.941 623.761
EOD
# s1: refctx 256K inline
$s2 << EOD
8 560.276 466.339 571.112
EOD
# s2: refctx 256K punt
$s3 << EOD
8 613.017 581.952 896.696
EOD
# s3: refctx 1M inline
$s4 << EOD
8 720.749 589.936 897.404
EOD
# s4: refctx 1M punt
$s5 << EOD
8 572.581 488.737 739.621
EOD
# s5: refctx 4M inline
$s6 << EOD
8 631.027 590.809 650.66
EOD
# s6: refctx 4M punt
$s7 << EOD
8 163.975 91.1042 270.473
EOD
# s7: refctx 16M inline
$s8 << EOD
8 138.141 122.225 471.143
EOD
# s8: refctx 16M punt
$s9 << EOD
6.15385 121.218 92.7755 138.713
20.8 121.218 92.7755 138.713
EOD
# s9: pin 256K inline
$s10 << EOD
6.15385 103.17 99.4484 132.937
20.8 103.17 99.4484 132.937
EOD
# s10: pin 256K punt
$s11 << EOD
6.15385 119.18 61.1891 130.311
20.8 119.18 61.1891 130.311
EOD
# s11: pin 1M inline
$s12 << EOD
6.15385 104.016 64.1363 117.561
20.8 104.016 64.1363 117.561
EOD
# s12: pin 1M punt
$s13 << EOD
6.15385 86.0807 62.764 97.3033
20.8 86.0807 62.764 97.3033
EOD
# s13: pin 4M inline
$s14 << EOD
6.15385 111.342 78.8569 114.633
20.8 111.342 78.8569 114.633
EOD
# s14: pin 4M punt
$s15 << EOD
6.15385 112.808 100.491 130.108
20.8 112.808 100.491 130.108
EOD
# s15: pin 16M inline
$s16 << EOD
6.15385 118.002 89.1895 153.954
20.8 118.002 89.1895 153.954
EOD
# s16: pin 16M punt
$s17 << EOD
6.15385 282.308 217.482 372.229
20.8 282.308 217.482 372.229
EOD
# s17: chunk 256K inline
$s18 << EOD
6.15385 292.745 284.876 375.963
20.8 292.745 284.876 375.963
EOD
# s18: chunk 256K punt
$s19 << EOD
6.15385 488.149 414.239 523.864
20.8 488.149 414.239 523.864
EOD
# s19: chunk 1M inline
$s20 << EOD
6.15385 437.751 424.112 541.763
20.8 437.751 424.112 541.763
EOD
# s20: chunk 1M punt
$s21 << EOD
6.15385 434.515 365.882 444.405
20.8 434.515 365.882 444.405
EOD
# s21: chunk 4M inline
$s22 << EOD
6.15385 468.756 448.357 490.934
20.8 468.756 448.357 490.934
EOD
# s22: chunk 4M punt
$s23 << EOD
6.15385 447.804 447.061 506.331
20.8 447.804 447.061 506.331
EOD
# s23: chunk 16M inline
$s24 << EOD
6.15385 491.677 475.128 522.366
20.8 491.677 475.128 522.366
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
