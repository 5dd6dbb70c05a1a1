# held.gp - drawn by refdio bench; run: gnuplot held.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/held.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Daemon memory held by chunks at peak against the write size (chunk 1M, issue inline; bounce64: 256K)'
set logscale xy 2
set xlabel 'write size (MiB)'
set ylabel 'bytes held at peak (MiB)'
set format y '%g'
set format x '%g'
$h0 << EOD
64 1
1024 1
8192 1
EOD
t0 = 'refctx W=1'
$h1 << EOD
64 2
1024 2
8192 2
EOD
t1 = 'refctx W=2'
$h2 << EOD
64 4
1024 4
8192 4
EOD
t2 = 'refctx W=4'
$h3 << EOD
64 8
1024 8
8192 8
EOD
t3 = 'refctx W=8'
$h4 << EOD
64 16
1024 16
8192 16
EOD
t4 = 'refctx W=16'
$h5 << EOD
64 32
1024 32
8192 32
EOD
t5 = 'refctx W=32'
$h6 << EOD
64 64
1024 1024
8192 8192
EOD
t6 = 'pin'
$h7 << EOD
64 1
1024 1
8192 1
EOD
t7 = 'chunk'
$h8 << EOD
64 0.25
1024 0.25
8192 0.25
EOD
t8 = 'bounce64'
plot \
  $h0 using 1:2 with linespoints lw 2 title t0, \
  $h1 using 1:2 with linespoints lw 2 title t1, \
  $h2 using 1:2 with linespoints lw 2 title t2, \
  $h3 using 1:2 with linespoints lw 2 title t3, \
  $h4 using 1:2 with linespoints lw 2 title t4, \
  $h5 using 1:2 with linespoints lw 2 title t5, \
  $h6 using 1:2 with linespoints lw 2 title t6, \
  $h7 using 1:2 with linespoints lw 2 title t7, \
  $h8 using 1:2 with linespoints lw 2 title t8
