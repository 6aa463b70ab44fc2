import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';

/** Risk score (0–100) over the workload's scans, oldest first. */
export function RiskChart({ times, scores }: { times: number[]; scores: number[] }) {
  const target = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!target.current) return;
    const chart = new uPlot(
      {
        width: 640,
        height: 200,
        scales: { y: { range: [0, 100] } },
        series: [{}, { label: 'risk score', stroke: '#c92a2a', width: 2, points: { show: true } }],
        axes: [{}, { label: 'risk' }],
      },
      [times, scores],
      target.current,
    );
    return () => chart.destroy();
  }, [times, scores]);
  return <div ref={target} role="img" aria-label={`Risk score over ${times.length} scans`} />;
}
