# ratios.gp - drawn by refdio bench; run: gnuplot ratios.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/ratios.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Everyday jobs: refdio / baseline (median of runs; 1 = as fast, above = refdio faster)'
set style data histogram
set style fill solid 0.8 border -1
set ylabel 'ratio'
set yrange [0:*]
set xtics rotate by -35
set bmargin 9
set rmargin 12
set key off
$r << EOD
"seq-write-qd1-direct" 0.274013
"seq-write-qd8-direct" 0.524865
"seq-read-qd1-direct" 0.437025
"seq-read-qd8-direct" 0.171853
"rand-write-qd1-direct" 0.23224
"rand-write-qd32-direct" 0.166299
"rand-read-qd1-direct" 0.144009
"rand-read-qd32-direct" 0.0711305
"seq-write-qd1-buffered" 0.0617965
"seq-write-qd8-buffered" 0.0553923
"seq-read-qd1-buffered" 0.163363
"seq-read-qd8-buffered" 0.166681
"rand-write-qd1-buffered" 0.0177362
"rand-write-qd32-buffered" 0.0115865
"rand-read-qd1-buffered" 0.106367
"rand-read-qd32-buffered" 0.0291623
"metadata create" 1.00894
"metadata stat" 0.25347
"metadata unlink" 0.0545485
EOD
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2
plot $r using 2:xtic(1) lc rgb '#4070a0', '' using 0:2:(sprintf('%.2f', $2)) with labels offset 0,0.7 notitle
