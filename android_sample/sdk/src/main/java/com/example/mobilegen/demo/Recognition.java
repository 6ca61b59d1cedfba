package com.example.mobilegen.demo;

import java.util.Locale;

/** One class of a classification result: its label, its index in the model output, its score. */
public final class Recognition {
    private final String label;
    private final int index;
    private final float score;

    public Recognition(String label, int index, float score) {
        this.label = label;
        this.index = index;
        this.score = score;
    }

    public String getLabel() {
        return label;
    }

    /** The class index in the model output. */
    public int getIndex() {
        return index;
    }

    /** The model's output for this class (dequantized for quantized models). */
    public float getScore() {
        return score;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s (%d): %.4f", label, index, score);
    }
}
