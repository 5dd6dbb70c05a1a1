# chunks-1G.gp - drawn by refdio bench; run: gnuplot chunks-1G.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/chunks/chunks-1G.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Direct writes of 1G from the caller: throughput against the chunk size (median, bars: range of 3 runs)'
set logscale x 2
set xlabel 'chunk size (KiB)'
set ylabel 'MiB/s'
set yrange [0:*]
set xrange [196.923:21299.2]
$s0 << EOD
196.923 1032.07 897.186 1627.25
21299.2 1032.07 897.186 1627.25
EOD
$s1 << EOD
256 731.282 463.194 1134.34
1024 1136.72 653.591 1268.93
4096 1448.27 621.39 2201.56
16384 328.014 100.894 450.351
EOD
$s2 << EOD
256 859.715 514.6 1250.78
1024 945.23 613.506 1220.15
4096 1731.62 653.467 2195.77
16384 475.247 91.4854 566.311
EOD
$s3 << EOD
256 195.477 94.4419 215.52
1024 100.377 97.6731 212.819
4096 94.7093 78.8251 157.779
16384 111.558 87.5237 177.163
EOD
$s4 << EOD
256 162.285 89.9928 190.424
1024 130.521 100.842 203.636
4096 92.2738 83.8225 183.583
16384 112.456 69.4887 157.852
EOD
$s5 << EOD
256 394.122 174.672 456.567
1024 365.143 363.36 618.029
4096 581.971 378.443 695.994
16384 575.814 533.087 820.053
EOD
$s6 << EOD
256 327.875 241.318 489.393
1024 298.13 227.502 506.479
4096 513.334 250.972 606.595
16384 577.737 543.446 854.034
EOD
plot \
  $s0 using 1:2 with lines lw 2 dt 2 title 'host O_DIRECT (dd bs=64M)', \
  $s1 using 1:2:3:4 with yerrorlines lw 2 title 'refctx W=8 inline', \
  $s2 using 1:2:3:4 with yerrorlines lw 2 title 'refctx W=8 punt', \
  $s3 using 1:2:3:4 with yerrorlines lw 2 title 'pin inline', \
  $s4 using 1:2:3:4 with yerrorlines lw 2 title 'pin punt', \
  $s5 using 1:2:3:4 with yerrorlines lw 2 title 'chunk inline', \
  $s6 using 1:2:3:4 with yerrorlines lw 2 title 'chunk punt'
