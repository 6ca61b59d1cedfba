package org.junit;
public class Assert {
    public static void assertEquals(long expected, long actual) { throw new RuntimeException("Stub!"); }
    public static void assertEquals(Object expected, Object actual) { throw new RuntimeException("Stub!"); }
    public static void assertArrayEquals(String message, byte[] expecteds, byte[] actuals) { throw new RuntimeException("Stub!"); }
    public static void assertTrue(String message, boolean condition) { throw new RuntimeException("Stub!"); }
    public static void assertFalse(String message, boolean condition) { throw new RuntimeException("Stub!"); }
}
