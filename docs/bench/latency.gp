# latency.gp - drawn by refdio bench; run: gnuplot latency.gp
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'docs/bench/latency.png'
set grid
set key outside right top
set offsets 0, 0, graph 0.06, graph 0.06
set title 'Everyday jobs: latency per operation (median of runs)'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel 'microseconds'
set xtics rotate by -35
set bmargin 9
$lat << EOD
"seq-write-qd1-direct" 409.577 981.631 4160.41 24509.7
"seq-write-qd8-direct" 3708.32 4836.48 18797.9 74545.5
"seq-read-qd1-direct" 351.907 794.726 2386.49 11691.7
"seq-read-qd8-direct" 3950.82 18304.8 33645.5 149275
"rand-write-qd1-direct" 70.353 224.586 961.823 4656.52
"rand-write-qd32-direct" 326.639 3911.76 14834.8 27681.9
"rand-read-qd1-direct" 58.19 364.23 468.748 6939.4
"rand-read-qd32-direct" 253.941 3968 4632.81 42471.9
"seq-write-qd1-buffered" 109.547 976.831 1684 40909.9
"seq-write-qd8-buffered" 930.673 15023.7 5067.57 80804
"seq-read-qd1-buffered" 38.793 152.639 307.052 4371.34
"seq-read-qd8-buffered" 329.735 2034.9 4429.89 12874.9
"rand-write-qd1-buffered" 6.252 320.728 48.451 4369.26
"rand-write-qd32-buffered" 129.134 14181.8 2589.8 50313
"rand-read-qd1-buffered" 59.733 450.995 246.847 5831.07
"rand-read-qd32-buffered" 91.343 5593.46 4198.83 50060.7
"metadata create" 163.25 97.004 4352.13 4193.38
"metadata stat" 2.245 16.522 11.963 39.164
"metadata unlink" 4.759 65.324 25.909 4058.21
EOD
plot $lat using 2:xtic(1) title 'baseline p50', '' using 3 title 'refdio p50', '' using 4 title 'baseline p99', '' using 5 title 'refdio p99'
