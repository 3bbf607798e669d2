package dev.jomni.rest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** {@code accuracy.png}: accuracy per iteration (XChart, headless), the data set's candidates and the held-out set's greedy answers. */
final class Plot {
    private Plot() {}

    static void accuracy(RestRun.Summary s, Path file) {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(640).height(400).title("ReST: accuracy per iteration").xAxisTitle("iteration")
                .yAxisTitle("accuracy (%)").build();
        chart.getStyler().setYAxisMin(0.0).setYAxisMax(100.0).setXAxisDecimalPattern("0").setMarkerSize(7);
        List<Double> x = new ArrayList<>(), data = new ArrayList<>();
        for (RestRun.Row r : s.rows()) {
            x.add((double) r.iteration());
            data.add(100 * r.candidateAccuracy());
        }
        chart.addSeries("data set: correct candidates (policy of iteration i-1)", x, data).setMarker(SeriesMarkers.CIRCLE);
        if (!Double.isNaN(s.baseEvalAccuracy())) {
            List<Double> ex = new ArrayList<>(List.of(0.0)), ey = new ArrayList<>(List.of(100 * s.baseEvalAccuracy()));
            for (RestRun.Row r : s.rows()) {
                ex.add((double) r.iteration());
                ey.add(100 * r.evalAccuracy());
            }
            chart.addSeries("held-out: greedy, after iteration i (0: base)", ex, ey).setMarker(SeriesMarkers.DIAMOND);
        }
        try {
            BitmapEncoder.saveBitmap(chart, file.toString().replaceFirst("\\.png$", ""), BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write the plot", e);
        }
    }
}
