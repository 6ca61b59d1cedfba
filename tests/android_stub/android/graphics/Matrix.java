package android.graphics;
public class Matrix {
    public Matrix() { throw new RuntimeException("Stub!"); }
    public void setRotate(float degrees) { throw new RuntimeException("Stub!"); }
    public void setScale(float sx, float sy) { throw new RuntimeException("Stub!"); }
    public boolean postScale(float sx, float sy) { throw new RuntimeException("Stub!"); }
}
