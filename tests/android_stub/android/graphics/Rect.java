package android.graphics;
public final class Rect {
    public int left, top, right, bottom;
}
