# held.gp - drawn by refdio bench; run: gnuplot held.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/chunks/held.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Daemon memory held by chunks at peak against the write size (chunk 256K, issue inline; bounce64: 256K)'
set logscale xy 2
set xlabel 'write size (MiB)'
set ylabel 'bytes held at peak (MiB)'
set format y '%g'
set format x '%g'
$h0 << EOD
64 2
1024 2
EOD
t0 = 'refctx W=8'
$h1 << EOD
64 64
1024 1024
EOD
t1 = 'pin'
$h2 << EOD
64 0.25
1024 0.25
EOD
t2 = 'chunk'
plot \
  $h0 using 1:2 with linespoints lw 2 title t0, \
  $h1 using 1:2 with linespoints lw 2 title t1, \
  $h2 using 1:2 with linespoints lw 2 title t2
